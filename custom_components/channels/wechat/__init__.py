"""WeChat-family connectors: Official Account (`mp`), WeCom app callback (`wecom`) and
WeChat Customer Service (`kf`), sharing crypto, dedup/token state and the API client."""
