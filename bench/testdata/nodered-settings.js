// Node-RED settings for the bench's comparison rows (bench/nodered_test.go):
// no editor, no admin API, warnings only, the flow file given on the command line.
module.exports = {
    httpAdminRoot: false,
    credentialSecret: false,
    logging: { console: { level: "warn", metrics: false, audit: false } },
    editorTheme: { projects: { enabled: false } },
    functionExternalModules: false,
};
