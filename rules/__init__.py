"""Decision policy: the pure decision core, policy files, gates and calculators."""
