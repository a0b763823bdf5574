module github.com/pq-issuer/pq-issuer

go 1.27

require github.com/cloudflare/circl v1.6.5

require golang.org/x/sys v0.47.0 // indirect
