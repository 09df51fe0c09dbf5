from devstack.idp.server import main

raise SystemExit(main())
