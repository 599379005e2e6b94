"""What both paths read from Stripe, and the few writes they make there, as vendor-neutral views and one port.

The Stigg import and the Metronome migration see Stripe only through `StripeSource` (`port.py`); the SDK adapter
(`billmig.adapters.stripe_sdk`) implements it, and tests run that adapter against the Stripe emulator.
"""
