"""Sign-in with the company's identity provider (OpenID Connect), provider groups as team
roles, email invitations and the end of sessions the provider decides: docs/sign-in.md."""
