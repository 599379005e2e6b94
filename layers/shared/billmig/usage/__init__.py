"""The parallel run's usage router: each usage event to Stripe, to both, or to Metronome, by its customer's phase and
its own timestamp; and the check that both vendors got every event (`completeness`)."""
