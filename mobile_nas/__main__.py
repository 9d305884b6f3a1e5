from mobile_nas.cli import main

raise SystemExit(main())
