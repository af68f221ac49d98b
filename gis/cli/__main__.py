from gis.cli import main

main()
