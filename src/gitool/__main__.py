"""``python -m gitool`` (also how torchrun re-launches gitool)."""

from gitool.cli import main

if __name__ == "__main__":
    main()
