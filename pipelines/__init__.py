"""Stage programs: the only place where configuration becomes objects."""
