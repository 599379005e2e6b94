"""The Stripe-to-Metronome path: config, snapshot, prepare, contract, parallel run, and the plan that predicts them."""
