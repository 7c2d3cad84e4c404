"""Provider value formats (dates, epoch timestamps, money) parsed in one place, with the bounds of the
columns they end up in. Pure functions with no imports of ours, so the receiver and the workers both use
them without either depending on the other."""
