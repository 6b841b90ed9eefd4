from andon.cli import main

main()
