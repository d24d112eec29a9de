from fleetops.cli import main

main()
