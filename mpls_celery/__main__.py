from mpls_celery.cli.app import main

main()
