"""A local HTTPS OAuth2 token authority (client credentials, OpenID discovery, JWKS) for devstack."""
