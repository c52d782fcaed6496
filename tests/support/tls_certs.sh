#!/bin/sh
# Throwaway certificates for the TLS tests, made fresh in DIR with
# `openssl req` and `openssl x509` (P-256 keys: fast to make):
#   ca.pem ca.key             the test CA
#   leaf.pem leaf.key         localhost, 127.0.0.1, ::1, signed by the CA
#   expired.pem               the same key, expired (notAfter yesterday)
#   wronghost.pem             the same key, for other.example only
#   self.pem self.key         self-signed, for localhost
#   client.pem client.key     a client certificate (CN=test client)
#   chain.pem                 leaf.pem + ca.pem
# Usage: tls_certs.sh OPENSSL DIR (made if missing; a set already there is
# replaced file by file: the tls_certs CTest fixture remakes its set each run)
set -eu
ossl=$1 dir=$2
mkdir -p "$dir"
cd "$dir"
key() { "$ossl" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
sign() { # csr-key cn san days out
    "$ossl" req -new -key "$1" -subj "/CN=$2" -out req.csr
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$3" >ext.cnf
    "$ossl" x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days "$4" \
        -extfile ext.cnf -out "$5" 2>/dev/null
}
key ca.key
"$ossl" req -x509 -new -key ca.key -subj "/CN=sockmsg test CA" -days 2 -out ca.pem
key leaf.key
sign leaf.key localhost "DNS:localhost,IP:127.0.0.1,IP:::1" 2 leaf.pem
sign leaf.key localhost "DNS:localhost,IP:127.0.0.1,IP:::1" -1 expired.pem
sign leaf.key other.example "DNS:other.example,DNS:www.other.example" 2 wronghost.pem
key client.key
sign client.key "test client" "DNS:client.test" 2 client.pem
key self.key
"$ossl" req -x509 -new -key self.key -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -days 2 -out self.pem
cat leaf.pem ca.pem >chain.pem
rm -f req.csr ext.cnf ca.srl
