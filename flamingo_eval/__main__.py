from flamingo_eval.cli import main

raise SystemExit(main())
