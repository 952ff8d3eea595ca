import sys

from customer_launcher.cli import main

sys.exit(main())
