from journey_ml.cli import main

main()
