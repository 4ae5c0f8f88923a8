"""Names, lists and behaviour constants of the simulated world.

Kept apart from the mechanics so the knobs that shape the data can be read in one place.
Index order matters: arrays elsewhere are indexed by the position of a name in these tuples.
"""

from __future__ import annotations

import numpy as np

SEGMENTS = ("smb", "mid_market", "enterprise")
SEGMENT_SHARE = np.array([0.55, 0.30, 0.15])
EMPLOYEES_LO = np.array([5, 200, 2_000])
EMPLOYEES_HI = np.array([199, 1_999, 60_000])
COMMITTEE_LO = np.array([1, 3, 6])
COMMITTEE_HI = np.array([3, 6, 12])
MAX_COMMITTEE = 12

ARCHETYPES = ("research_intensive", "fast_track", "comparison_shopper")
RESEARCH, FAST, COMPARE = 0, 1, 2
# rows: segment; columns: archetype (enterprise buyers research more)
ARCHETYPE_SHARE = np.array([[0.25, 0.45, 0.30], [0.35, 0.25, 0.40], [0.50, 0.15, 0.35]])

ROLES = ("economic_buyer", "technical_evaluator", "end_user", "procurement", "champion")
ECO, TECH, END_USER, PROC, CHAMPION = 0, 1, 2, 3, 4
# committee seats from the fifth on
EXTRA_ROLE_SHARE = np.array([0.05, 0.20, 0.45, 0.10, 0.20])
TITLES = (
    ("CFO", "VP Finance", "COO", "Head of Revenue Operations"),
    ("IT Director", "Solutions Architect", "Head of Data", "Lead Engineer"),
    ("Marketing Manager", "CRM Analyst", "Customer Success Manager", "Growth Marketer"),
    ("Procurement Manager", "Purchasing Lead", "Vendor Manager"),
    ("Head of Marketing Operations", "Director of Customer Experience", "VP Marketing"),
)

PLANS = ("starter", "growth", "enterprise")
PLAN_SHARE = np.array([[0.75, 0.25, 0.0], [0.15, 0.70, 0.15], [0.0, 0.30, 0.70]])
PLAN_ACV = np.array([6_000.0, 30_000.0, 150_000.0])
CONTRACT_TYPES = ("monthly", "annual", "multi_year")
CONTRACT_SHARE = np.array([[0.50, 0.45, 0.05], [0.20, 0.70, 0.10], [0.05, 0.60, 0.35]])

INDUSTRIES = (
    "Software", "Financial Services", "Healthcare", "Manufacturing", "Retail", "Logistics",
    "Education", "Media", "Telecommunications", "Energy", "Professional Services",
    "Public Sector",
)  # fmt: skip

# name, region, share, phone country code, UTC offset in minutes for the non-UTC timestamps
COUNTRIES = (
    ("United States", "NA", 0.36, "1", -300),
    ("Canada", "NA", 0.06, "1", -300),
    ("United Kingdom", "EMEA", 0.10, "44", 60),
    ("Germany", "EMEA", 0.10, "49", 120),
    ("France", "EMEA", 0.07, "33", 120),
    ("Netherlands", "EMEA", 0.05, "31", 120),
    ("Spain", "EMEA", 0.03, "34", 120),
    ("Sweden", "EMEA", 0.03, "46", 120),
    ("India", "APAC", 0.05, "91", 330),
    ("Japan", "APAC", 0.04, "81", 540),
    ("Australia", "APAC", 0.05, "61", 600),
    ("Brazil", "LATAM", 0.04, "55", -180),
    ("Mexico", "LATAM", 0.02, "52", -360),
)
COUNTRY_SHARE = np.array([c[2] for c in COUNTRIES]) / sum(c[2] for c in COUNTRIES)
COUNTRY_OFFSET_MIN = np.array([c[4] for c in COUNTRIES])

COMPANY_WORDS = (
    "Northwind", "Bluepeak", "Silverline", "Ironbridge", "Brightwater", "Redwood", "Quantum",
    "Harbor", "Summit", "Evergreen", "Lumen", "Atlas", "Cobalt", "Granite", "Horizon",
    "Keystone", "Maple", "Nimbus", "Orion", "Pioneer", "Riverstone", "Sterling", "Trident",
    "Vertex", "Westfield", "Crescent", "Falcon", "Juniper", "Meridian", "Oakridge",
)  # fmt: skip
COMPANY_NOUNS = (
    "Analytics", "Systems", "Logistics", "Health", "Foods", "Capital", "Labs", "Energy",
    "Retail", "Networks", "Partners", "Industries", "Software", "Media", "Robotics",
    "Insurance", "Consulting", "Manufacturing", "Telecom", "Learning",
)  # fmt: skip
COMPANY_FORMS = ("Inc.", "LLC", "Ltd", "GmbH", "SAS", "BV", "AG", "Group", "Co.")

# 61 first names (a prime), so stepping through them gives distinct names per committee
FIRST_NAMES = (
    "Anna", "Ben", "Carla", "David", "Elena", "Felix", "Grace", "Hugo", "Ines", "Jonas",
    "Karin", "Liam", "Maya", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Samuel", "Tara",
    "Umar", "Vera", "William", "Xenia", "Yusuf", "Zoe", "Aisha", "Bruno", "Chloe", "Diego",
    "Emma", "Farid", "Greta", "Hannah", "Ivan", "Julia", "Kenji", "Lena", "Marco", "Nora",
    "Oscar", "Priya", "Rafael", "Sofia", "Thomas", "Ulla", "Victor", "Wen", "Yara", "Adam",
    "Bianca", "Carlos", "Daria", "Erik", "Fatima", "Gabriel", "Helena", "Isaac", "Jana",
    "Lucas", "Mila",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Garcia", "Muller", "Martin", "Rossi", "Jansen", "Kowalski",
    "Nguyen", "Tanaka", "Silva", "Patel", "Brown", "Schmidt", "Dubois", "Andersson",
    "Lopez", "Novak", "Fischer", "Moreau", "Kim", "Singh", "Weber", "Costa", "Bauer",
    "Lefevre", "Hansen", "Ito", "Santos", "Meyer", "Clarke", "Romero", "Wagner", "Larsen",
    "Bernard", "Sato", "Khan", "Becker", "Ferreira", "Nilsson",
)  # fmt: skip

# --- web --------------------------------------------------------------------------------
WEB_EVENTS = (
    "page_view", "blog_view", "pricing_page_view", "comparison_page_view", "case_study_view",
    "content_download", "demo_request", "trial_signup", "docs_view", "integrations_page_view",
)  # fmt: skip
PRICING, DEMO_REQUEST, INTEGRATIONS = 2, 6, 9
# the known dead end (issue #13): a share of prospects visit the integrations page; most of
# the visitors who will not buy go dark right after it (nothing of theirs follows), so the
# friction table has a step whose exit rate is known by construction (see truth.csv)
DEAD_END_VISIT = 0.3  # of prospects with two or more web visits as prospects
DEAD_END_EXIT = 0.7  # of the visitors who never convert
# type mix of prospect web events (rows: archetype); `heat` (0..1, how close the account is
# to buying) adds WEB_BOOST, so high-intent pages rise as a deal approaches
WEB_BASE = np.array(
    [
        [20, 24, 3, 3, 14, 16, 0.3, 0.3, 4],
        [38, 8, 10, 3, 5, 3, 1.5, 2.0, 8],
        [24, 8, 18, 16, 8, 5, 0.4, 0.4, 5],
    ]
)
WEB_BOOST = np.array(
    [
        [0, 0, 14, 4, 10, 8, 7, 4, 4],
        [0, 0, 14, 2, 2, 0, 14, 12, 6],
        [0, 0, 22, 12, 4, 2, 7, 5, 3],
    ]
)
WEB_CUSTOMER = np.array([25, 15, 3, 1, 3, 3, 0, 0, 50])
# the mixes above never draw the integrations page: only the dead-end step adds it
WEB_MEDIAN_SECONDS = np.array([45, 120, 70, 95, 150, 20, 35, 40, 180, 60])
WEB_URLS = (
    ("/", "/product", "/solutions/b2b-marketing", "/solutions/revenue-teams", "/about",
     "/customers", "/integrations"),
    ("/blog/journey-mapping-101", "/blog/attribution-is-dead", "/blog/b2b-buying-committees",
     "/blog/predictive-lead-scoring", "/blog/churn-signals", "/blog/intent-data-guide"),
    ("/pricing", "/pricing?plan=growth", "/pricing?plan=enterprise"),
    ("/compare/competitor-a", "/compare/competitor-b", "/compare/spreadsheets"),
    ("/customers/northwind-case-study", "/customers/atlas-logistics", "/customers/summit-health"),
    ("/resources/buyer-guide.pdf", "/resources/roi-calculator.xlsx",
     "/resources/state-of-b2b-journeys-2025.pdf", "/resources/security-whitepaper.pdf"),
    ("/demo",),
    ("/trial", "/signup?trial=14d"),
    ("/docs/getting-started", "/docs/api", "/docs/integrations/salesforce",
     "/docs/journeys", "/docs/sso"),
    ("/integrations", "/integrations/salesforce", "/integrations/hubspot"),
)  # fmt: skip
WEB_HOSTS = ("https://www.journeyco.example", "https://docs.journeyco.example")

# --- email and webinars -----------------------------------------------------------------
EMAIL_EVENTS = ("email_sent", "email_open", "email_click", "email_unsubscribe")
CAMPAIGN_KINDS = ("newsletter", "nurture", "product_update", "webinar_invite")
CAMPAIGN_TOPICS = (
    "pricing-guide", "roi-story", "new-features", "customer-stories", "industry-report",
    "best-practices", "security", "integrations", "year-in-review", "checklist",
)  # fmt: skip
WEBINAR_EVENTS = ("webinar_registered", "webinar_attended")
WEBINAR_TOPICS = (
    "Journey analytics 101", "Predicting conversion with intent data",
    "Building a buying-committee view", "From MQL to revenue", "Churn early-warning signals",
    "Customer story: scaling onboarding", "Product tour: journeys and segments",
)  # fmt: skip

# --- sales --------------------------------------------------------------------------------
SALES_EVENTS = (
    "sales_call", "meeting", "demo_held", "proposal_sent", "negotiation", "closed_won",
    "closed_lost",
)  # fmt: skip
CALL, MEETING, DEMO_HELD, PROPOSAL, NEGOTIATION, WON, LOST = range(7)
SALES_NOTES = (
    ("Discovery call, discussed current tooling and pain points",
     "Intro call; asked about \"journey scoring\" and timelines",
     "Left voicemail, follow-up email sent", "Qualified: budget owner identified"),
    ("Stakeholder meeting with marketing ops", "QBR prep, reviewed adoption metrics",
     "Alignment meeting on success criteria"),
    ("Product demo for evaluation team, focus on integrations",
     "Demo held; questions on SSO, data residency and API limits"),
    ("Proposal sent, 12-month term", "Proposal sent with volume discount, valid 30 days"),
    ("Negotiating payment terms", "Legal review of MSA, redlines on liability"),
    ("Contract signed", "Closed won, handover to onboarding"),
    ("Lost to competitor", "No decision, budget frozen", "Lost: timing, revisit next year"),
)  # fmt: skip
# role weights for the contact an activity is logged against (ECO, TECH, END_USER, PROC, CHAMPION)
SALES_ROLE_WEIGHT = np.array(
    [
        [1.0, 0.5, 0.4, 0.2, 1.5],
        [1.2, 0.8, 0.3, 0.4, 1.0],
        [0.5, 2.0, 0.6, 0.1, 0.8],
        [2.0, 0.3, 0.1, 1.5, 0.5],
        [2.0, 0.3, 0.1, 1.5, 0.5],
        [2.0, 0.3, 0.1, 1.5, 0.5],
        [2.0, 0.3, 0.1, 1.5, 0.5],
    ]
)
WEB_ROLE_BASE = np.array([0.25, 0.6, 1.0, 0.1, 1.2])
WEB_ROLE_LATE = np.array([1.2, 1.5, 0.0, 0.4, 0.3])

# --- support, billing, product ------------------------------------------------------------
SUPPORT_EVENTS = ("ticket_opened", "ticket_escalated", "ticket_closed")
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_SHARE = np.array([[0.30, 0.45, 0.18, 0.07], [0.10, 0.35, 0.35, 0.20]])
CATEGORIES = (
    "bug", "how_to", "billing", "integration", "access", "performance", "feature_request",
)  # fmt: skip
SUPPORT_ROLE_WEIGHT = np.array([0.1, 1.2, 1.5, 0.1, 0.8])

BILLING_EVENTS = (
    "subscription_started", "invoice_paid", "payment_failed", "renewal", "upgrade",
    "downgrade", "cancellation",
)  # fmt: skip
(SUB_STARTED, INVOICE_PAID, PAYMENT_FAILED, RENEWAL, UPGRADE, DOWNGRADE, CANCELLATION) = range(7)

PRODUCT_EVENTS = ("login", "feature_used", "onboarding_completed")
FEATURES = (
    "dashboard", "journey_map", "segments", "reports", "alerts", "api", "integrations",
    "exports", "ai_insights",
)  # fmt: skip
FEATURE_SHARE = np.array([0.24, 0.18, 0.14, 0.14, 0.08, 0.06, 0.06, 0.06, 0.04])
USAGE_ROLE_RATE = np.array([0.15, 0.8, 1.0, 0.05, 1.3])

# --- deliberately bad rows ----------------------------------------------------------------
BAD_TIMESTAMPS = ("not-a-date", "31/02/2025", "2025-13-45T25:61:00Z", "2025-02-30 10:00")
UNKNOWN_EVENTS = ("chat_started", "pagevew", "Page View", "email_bounced", "unknown")
NOT_A_NUMBER = ("abc", "twelve", "1.2.3", "--")
