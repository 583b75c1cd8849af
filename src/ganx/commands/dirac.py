"""The ``ganx-dirac`` command: ``ganx-dirac serve ...`` starts the explorer page
(:mod:`ganx.dirac_serve`); anything else is the study (:mod:`ganx.dirac_study`)."""

from __future__ import annotations

import sys

SERVE_HELP = """ganx-dirac serve: the Dirac-GAN explorer, one page at http://HOST:PORT/ (offline).

  ganx-dirac serve                      # http://127.0.0.1:8765/
  ganx-dirac serve port=9000 host=0.0.0.0

== Keys (key=value) ==
host   the address to listen on (127.0.0.1: this machine only)   [127.0.0.1]
port   the port (0: any free one)                                 [8765]

Ctrl-C stops it."""


def main() -> None:
    from .ganx import handle_version

    handle_version("ganx-dirac")
    if sys.argv[1:2] != ["serve"]:
        from ..dirac_study import main as study_main

        study_main()
        return
    if {"-h", "--help"} & set(sys.argv[2:]):
        print(SERVE_HELP)
        return
    from ..dirac_serve import serve_main

    serve_main(sys.argv[2:])


if __name__ == "__main__":
    main()
