// nodered-settings.js - Node-RED settings for the Node-RED peer of
// `make bench-peers`: headless (no editor, no HTTP server), loopback only,
// and the current `pg` driver handed to function nodes through the global
// context (CW_NODE_PG is the path run.sh installed it to).
module.exports = {
  uiHost: "127.0.0.1",
  httpAdminRoot: false,
  httpNodeRoot: false,
  credentialSecret: false,
  functionGlobalContext: { pg: require(process.env.CW_NODE_PG || "pg") },
  logging: { console: { level: "info", metrics: false, audit: false } },
  editorTheme: { projects: { enabled: false } },
  diagnostics: { enabled: false },
  telemetry: { enabled: false },
};
