"""The Faust application, its topics, agents, tables and web views, the brokers and the command line."""
