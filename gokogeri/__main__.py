from gokogeri.cli import main

main()
