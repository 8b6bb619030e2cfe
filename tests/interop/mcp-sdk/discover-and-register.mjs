// Discovers the authorization server at argv[2] with the MCP SDK's own
// helpers and registers the client metadata given as JSON in argv[3], as an
// MCP client does before its first authorization. Prints what it learnt as
// one JSON line: { metadata, client }.
import {
  discoverAuthorizationServerMetadata,
  registerClient,
} from "@modelcontextprotocol/sdk/client/auth.js";

const [authorizationServer, clientMetadata] = process.argv.slice(2);
const metadata = await discoverAuthorizationServerMetadata(authorizationServer);
if (!metadata) {
  throw new Error(`no authorization server metadata at ${authorizationServer}`);
}
const client = await registerClient(authorizationServer, {
  metadata,
  clientMetadata: JSON.parse(clientMetadata),
});
console.log(JSON.stringify({ metadata, client }));
