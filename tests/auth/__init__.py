"""Sign-in, sign-out and the sign-in throttle (fvapp/auth/)."""
