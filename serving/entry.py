"""The server process's program: ``python -m serving.entry <vLLM flags>``.

Its code is ``serving.process.server``; this name is the stable one that the launcher, the
supervisor file, the images and the process list show. vLLM's engine processes import this
module as ``__mp_main__``, which imports the server module and so installs its log filter there.
"""

from serving.process.server import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
