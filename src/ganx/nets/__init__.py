"""Generator/discriminator pairs. No loss code lives here: D returns raw logits of shape (B,)."""
