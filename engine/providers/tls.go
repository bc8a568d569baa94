package main

// tls:index/privateKey, selfSignedCert, certRequest and locallySignedCert, in the formats of
// pulumi-tls 5.6.1 (terraform-provider-tls): RSA private keys PKCS#1, EC keys SEC1, ED25519
// PKCS#8; public keys PKIX; OpenSSH forms by x/crypto/ssh. Every input change replaces.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

func tlsTypes() map[string]resourceType {
	return map[string]resourceType{
		"tls:index/privateKey:PrivateKey": {
			replaceOnChange: []string{"*"},
			defaults: func(in props) props {
				out := copyProps(in)
				if _, ok := out["rsaBits"]; !ok {
					out["rsaBits"] = float64(2048)
				}
				if _, ok := out["ecdsaCurve"]; !ok {
					out["ecdsaCurve"] = "P224"
				}
				return out
			},
			previewOutputs: []string{"privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh", "publicKeyPem", "publicKeyOpenssh", "publicKeyFingerprintMd5", "publicKeyFingerprintSha256"},
			create:         createPrivateKey,
		},
		"tls:index/selfSignedCert:SelfSignedCert": {
			replaceOnChange: []string{"*"},
			previewOutputs:  []string{"certPem", "validityStartTime", "validityEndTime", "keyAlgorithm"},
			create: func(_ context.Context, _ call, in props) (string, props, error) {
				key, err := parsePrivateKey(str(in, "privateKeyPem"))
				if err != nil {
					return "", nil, fmt.Errorf("privateKeyPem: %w", err)
				}
				tmpl, err := certTemplate(in)
				if err != nil {
					return "", nil, err
				}
				tmpl.Subject = subject(object(in, "subject"))
				tmpl.DNSNames = strs(in, "dnsNames")
				if tmpl.IPAddresses, err = ips(strs(in, "ipAddresses")); err != nil {
					return "", nil, err
				}
				pub := key.(crypto.Signer).Public()
				if boolean(in, "setSubjectKeyId", false) {
					tmpl.SubjectKeyId = keyID(pub)
				}
				return signCert(in, tmpl, tmpl, pub, key)
			},
		},
		"tls:index/certRequest:CertRequest": {
			replaceOnChange: []string{"*"},
			previewOutputs:  []string{"certRequestPem", "keyAlgorithm"},
			create: func(_ context.Context, _ call, in props) (string, props, error) {
				key, err := parsePrivateKey(str(in, "privateKeyPem"))
				if err != nil {
					return "", nil, fmt.Errorf("privateKeyPem: %w", err)
				}
				req := &x509.CertificateRequest{Subject: subject(object(in, "subject")), DNSNames: strs(in, "dnsNames")}
				if req.IPAddresses, err = ips(strs(in, "ipAddresses")); err != nil {
					return "", nil, err
				}
				der, err := x509.CreateCertificateRequest(rand.Reader, req, key)
				if err != nil {
					return "", nil, err
				}
				out := copyProps(in)
				out["certRequestPem"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
				out["keyAlgorithm"] = algorithmOf(key)
				return hashID(der), out, nil
			},
		},
		"tls:index/locallySignedCert:LocallySignedCert": {
			replaceOnChange: []string{"*"},
			previewOutputs:  []string{"certPem", "validityStartTime", "validityEndTime", "caKeyAlgorithm"},
			create: func(_ context.Context, _ call, in props) (string, props, error) {
				req, err := parsePEM(in, "certRequestPem", x509.ParseCertificateRequest)
				if err != nil {
					return "", nil, err
				}
				caKey, err := parsePrivateKey(str(in, "caPrivateKeyPem"))
				if err != nil {
					return "", nil, fmt.Errorf("caPrivateKeyPem: %w", err)
				}
				ca, err := parsePEM(in, "caCertPem", x509.ParseCertificate)
				if err != nil {
					return "", nil, err
				}
				tmpl, err := certTemplate(in)
				if err != nil {
					return "", nil, err
				}
				tmpl.Subject, tmpl.DNSNames, tmpl.IPAddresses, tmpl.URIs = req.Subject, req.DNSNames, req.IPAddresses, req.URIs
				tmpl.AuthorityKeyId = ca.SubjectKeyId
				if boolean(in, "setSubjectKeyId", false) {
					tmpl.SubjectKeyId = keyID(req.PublicKey)
				}
				id, out, err := signCert(in, tmpl, ca, req.PublicKey, caKey)
				if out != nil {
					delete(out, "keyAlgorithm")
					out["caKeyAlgorithm"] = algorithmOf(caKey)
				}
				return id, out, err
			},
		},
	}
}

func createPrivateKey(_ context.Context, _ call, in props) (string, props, error) {
	var key crypto.Signer
	var err error
	switch str(in, "algorithm") {
	case "RSA":
		key, err = rsa.GenerateKey(rand.Reader, int(num(in, "rsaBits", 2048)))
	case "ECDSA":
		curves := map[string]elliptic.Curve{"P224": elliptic.P224(), "P256": elliptic.P256(), "P384": elliptic.P384(), "P521": elliptic.P521()}
		curve, ok := curves[str(in, "ecdsaCurve")]
		if !ok {
			return "", nil, fmt.Errorf("ecdsaCurve %q: must be P224, P256, P384 or P521", str(in, "ecdsaCurve"))
		}
		key, err = ecdsa.GenerateKey(curve, rand.Reader)
	case "ED25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return "", nil, fmt.Errorf("algorithm %q: must be RSA, ECDSA or ED25519", str(in, "algorithm"))
	}
	if err != nil {
		return "", nil, err
	}
	var block *pem.Block
	switch k := key.(type) {
	case *rsa.PrivateKey:
		block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return "", nil, err
		}
		block = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	default:
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return "", nil, err
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", nil, err
	}
	pubDer, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", nil, err
	}
	out := copyProps(in)
	out["privateKeyPem"] = string(pem.EncodeToMemory(block))
	out["privateKeyPemPkcs8"] = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	out["publicKeyPem"] = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDer}))
	out["privateKeyOpenssh"], out["publicKeyOpenssh"], out["publicKeyFingerprintMd5"], out["publicKeyFingerprintSha256"] = "", "", "", ""
	// OpenSSH has no P-224: the real provider leaves the OpenSSH forms empty for it too.
	if sshPub, err := ssh.NewPublicKey(key.Public()); err == nil {
		if priv, err := ssh.MarshalPrivateKey(key, ""); err == nil {
			out["privateKeyOpenssh"] = string(pem.EncodeToMemory(priv))
		}
		out["publicKeyOpenssh"] = string(ssh.MarshalAuthorizedKey(sshPub))
		out["publicKeyFingerprintMd5"] = ssh.FingerprintLegacyMD5(sshPub)
		out["publicKeyFingerprintSha256"] = ssh.FingerprintSHA256(sshPub)
	}
	return hashID(pubDer), out, nil
}

func hashID(der []byte) string {
	sum := sha1.Sum(der)
	return hex.EncodeToString(sum[:])
}

func keyID(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	sum := sha1.Sum(der)
	return sum[:]
}

// parsePEM reads the first PEM block of input `key` with parse; errors name the input.
func parsePEM[T any](in props, key string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	block, _ := pem.Decode([]byte(str(in, key)))
	if block == nil {
		return zero, fmt.Errorf("%s: no PEM block", key)
	}
	v, err := parse(block.Bytes)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", key, err)
	}
	return v, nil
}

func parsePrivateKey(text string) (crypto.PrivateKey, error) {
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		return x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
}

func algorithmOf(key crypto.PrivateKey) string {
	switch key.(type) {
	case *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PrivateKey:
		return "ECDSA"
	default:
		return "ED25519"
	}
}

func subject(s props) pkix.Name {
	n := pkix.Name{CommonName: str(s, "commonName"), SerialNumber: str(s, "serialNumber")}
	one := func(k string) []string {
		if v := str(s, k); v != "" {
			return []string{v}
		}
		return nil
	}
	n.Organization, n.OrganizationalUnit, n.Locality, n.Province, n.Country, n.PostalCode =
		one("organization"), one("organizationalUnit"), one("locality"), one("province"), one("country"), one("postalCode")
	n.StreetAddress = strs(s, "streetAddresses")
	return n
}

func ips(list []string) ([]net.IP, error) {
	var out []net.IP
	for _, s := range list {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("ipAddresses: %q is not an IP address", s)
		}
		out = append(out, ip)
	}
	return out, nil
}

var keyUsages = map[string]x509.KeyUsage{
	"digital_signature": x509.KeyUsageDigitalSignature, "content_commitment": x509.KeyUsageContentCommitment,
	"key_encipherment": x509.KeyUsageKeyEncipherment, "data_encipherment": x509.KeyUsageDataEncipherment,
	"key_agreement": x509.KeyUsageKeyAgreement, "cert_signing": x509.KeyUsageCertSign, "crl_signing": x509.KeyUsageCRLSign,
	"encipher_only": x509.KeyUsageEncipherOnly, "decipher_only": x509.KeyUsageDecipherOnly,
}

var extUsages = map[string]x509.ExtKeyUsage{
	"any_extended": x509.ExtKeyUsageAny, "server_auth": x509.ExtKeyUsageServerAuth, "client_auth": x509.ExtKeyUsageClientAuth,
	"code_signing": x509.ExtKeyUsageCodeSigning, "email_protection": x509.ExtKeyUsageEmailProtection,
	"ipsec_end_system": x509.ExtKeyUsageIPSECEndSystem, "ipsec_tunnel": x509.ExtKeyUsageIPSECTunnel, "ipsec_user": x509.ExtKeyUsageIPSECUser,
	"timestamping": x509.ExtKeyUsageTimeStamping, "ocsp_signing": x509.ExtKeyUsageOCSPSigning,
	"microsoft_server_gated_crypto": x509.ExtKeyUsageMicrosoftServerGatedCrypto, "netscape_server_gated_crypto": x509.ExtKeyUsageNetscapeServerGatedCrypto,
}

func certTemplate(in props) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	hours := num(in, "validityPeriodHours", 0)
	if hours <= 0 {
		return nil, errors.New("validityPeriodHours: must be at least 1")
	}
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now,
		NotAfter:              now.Add(time.Duration(hours) * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  boolean(in, "isCaCertificate", false),
	}
	for _, u := range strs(in, "allowedUses") {
		if k, ok := keyUsages[u]; ok {
			tmpl.KeyUsage |= k
		} else if e, ok := extUsages[u]; ok {
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, e)
		} else {
			return nil, fmt.Errorf("allowedUses: %q is not a key usage", u)
		}
	}
	return tmpl, nil
}

func signCert(in props, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.PrivateKey) (string, props, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return "", nil, err
	}
	out := copyProps(in)
	out["certPem"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	out["validityStartTime"] = tmpl.NotBefore.Format(time.RFC3339)
	out["validityEndTime"] = tmpl.NotAfter.Format(time.RFC3339)
	out["readyForRenewal"] = false
	out["keyAlgorithm"] = algorithmOf(signer)
	return strings.TrimLeft(tmpl.SerialNumber.String(), "-"), out, nil
}
