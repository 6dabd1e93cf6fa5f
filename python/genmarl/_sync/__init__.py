"""Per-scenario copies of mpe2 scenario state into genmarl's aux arrays (used by genmarl.testing)."""
