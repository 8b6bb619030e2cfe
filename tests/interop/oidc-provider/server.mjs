// A real RFC 7591/7592 authorization server for the gateway's interop test:
// node-oidc-provider with dynamic registration, registration management, the
// client_credentials grant and the device flow (VS Code asks for it).
// Usage: node server.mjs PORT [INITIAL_ACCESS_TOKEN]
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const initialAccessToken = process.argv[3] || false;
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  features: {
    registration: { enabled: true, initialAccessToken },
    registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    devInteractions: { enabled: false },
  },
});

provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
