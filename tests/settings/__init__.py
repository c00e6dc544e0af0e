"""The Settings pages and the dashboard (fvapp/settings/, fvapp/dashboard/), driven as a browser would."""
