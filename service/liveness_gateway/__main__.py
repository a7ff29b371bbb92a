from liveness_gateway.cli import main

raise SystemExit(main())
