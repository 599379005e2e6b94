"""The Stigg import: customers, then subscriptions (free, custom, paid), then usage, as Stigg's guide orders them."""
