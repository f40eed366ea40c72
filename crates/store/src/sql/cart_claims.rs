//! `cart_claims`: who holds the right to complete a cart. Rows are never changed or
//! deleted, so reading after a conflicting insert always finds the holder.

/// Takes the claim unless someone holds it.
pub(crate) const INSERT: &str = "\
    INSERT INTO cart_claims (cart_id, provider, psp_ref, claimed_at) \
    VALUES ($1, $2, $3, $4) \
    ON CONFLICT (cart_id) DO NOTHING";

/// The holder of a cart's claim.
pub(crate) const GET: &str = "SELECT provider, psp_ref FROM cart_claims WHERE cart_id = $1";
