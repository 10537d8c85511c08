DROP TABLE login_failures;
DROP TABLE web_sessions;
DROP TABLE users;
DROP TABLE api_tokens;
