/* LD_PRELOAD shim for the HTTPS benchmark (benches/https.sh): caps the highest TLS version an
 * OpenSSL client asks for at TLS 1.2. h2load (nghttp2 1.52) sets its maximum to TLS 1.3 itself,
 * which overrides OPENSSL_CONF, and an empty --tls13-ciphers makes its handshakes fail, so
 * there is no flag that makes it speak TLS 1.2 to a server offering 1.3. No OpenSSL headers
 * needed: the two constants are OpenSSL's stable ABI values. */
#define _GNU_SOURCE
#include <dlfcn.h>

#define SSL_CTRL_SET_MAX_PROTO_VERSION 124
#define TLS1_2_VERSION 0x0303

long SSL_CTX_ctrl(void *ctx, int cmd, long larg, void *parg) {
  static long (*real)(void *, int, long, void *);
  if (!real) real = (long (*)(void *, int, long, void *))dlsym(RTLD_NEXT, "SSL_CTX_ctrl");
  if (cmd == SSL_CTRL_SET_MAX_PROTO_VERSION) larg = TLS1_2_VERSION;
  return real(ctx, cmd, larg, parg);
}
