// A real OpenID provider for the OAuth tests (tests/server/http/test_oauth.py): the npm package
// `oidc-provider` (OpenID Certified), on a free loopback port, minting JWT access tokens for one
// resource (our audience) through its client credentials grant.
//
// Usage: node oidc_provider.mjs <config.json> <node_modules>; the config names the signing keys (a private JWK set,
// so the tests can also sign tokens the provider would never mint: expired ones, a wrong issuer),
// the clients (client_id, client_secret, scope) and the scopes a resource server grants. Prints one
// JSON line {"issuer": ...} once it listens. `GET /test/jwks-hits` answers how often the JWK set
// was fetched (the tests check that unknown key ids do not make the server refetch it each time).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// tools/node/node_modules is not next to this file, and ES modules ignore NODE_PATH.
const modules = process.argv[3];
const { default: Provider } = await import(pathToFileURL(join(modules, 'oidc-provider', 'lib', 'index.js')).href);
const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const server = http.createServer();
await new Promise((resolve) => server.listen(cfg.port ?? 0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  jwks: cfg.jwks,
  clients: cfg.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    scope: c.scope,
  })),
  scopes: cfg.scopes,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client, oneOf) => oneOf ?? cfg.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => ({
        scope: cfg.scopes.join(' '),
        audience: resourceIndicator,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});

let jwksHits = 0;
provider.use(async (ctx, next) => {
  if (ctx.path === '/test/jwks-hits') {
    ctx.body = { hits: jwksHits };
    return;
  }
  if (ctx.path === '/jwks') jwksHits += 1;
  await next();
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
