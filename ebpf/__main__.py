import sys

from ebpf.cli.main import main

sys.exit(main())
