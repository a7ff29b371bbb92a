//go:build securetest

package livenessclient_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/liveness-gateway/liveness-gateway/clients/go/livenessclient"
	livenessv1 "github.com/liveness-gateway/liveness-gateway/clients/go/livenessv1"
)

// These tests run from secure-test.sh, against gateways it starts with TLS, a callers file
// and (for TestSecureMTLS) a client CA; LIVENESS_TEST_TLS_DIR holds the certificates.

func env(t *testing.T, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		t.Fatalf("%s is not set: run secure-test.sh (make test-client-go)", key)
	}
	return v
}

// tlsConfig trusts the test CA and presents the named client certificate ("" for none).
func tlsConfig(t *testing.T, clientCert string) *tls.Config {
	t.Helper()
	dir := env(t, "LIVENESS_TEST_TLS_DIR")
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	ca := x509.NewCertPool()
	if !ca.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate")
	}
	cfg := &tls.Config{RootCAs: ca, MinVersion: tls.VersionTLS12}
	if clientCert != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, clientCert+".crt"), filepath.Join(dir, clientCert+".key"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

func secureClient(t *testing.T, opts ...grpc.DialOption) *livenessclient.Client {
	t.Helper()
	c, err := livenessclient.New(env(t, "LIVENESS_TARGET"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func detectScore(c *livenessclient.Client) (*livenessclient.DetectResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Detect(ctx, &livenessv1.DetectRequest{
		Source: &livenessv1.DetectRequest_LivenessData{LivenessData: []byte("SANDBOX:score=0.25")}})
}

func wantScore(t *testing.T, res *livenessclient.DetectResult, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if res.GetScore() != 0.25 || len(res.RequestID) != 32 {
		t.Fatalf("got score %v, request id %q", res.GetScore(), res.RequestID)
	}
}

func wantFailure(t *testing.T, err error, code codes.Code, reason livenessv1.ErrorReason) *livenessclient.Error {
	t.Helper()
	lerr := livenessclient.FromError(err)
	if lerr == nil || lerr.Code != code || lerr.Reason != reason || lerr.RequestID == "" {
		t.Fatalf("want %s %s with a request id, got %+v", code, reason, lerr)
	}
	return lerr
}

func TestSecureTLS(t *testing.T) {
	tlsCreds := grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig(t, "")))
	token := livenessclient.BearerToken(env(t, "LIVENESS_TEST_TOKEN"))

	t.Run("bearer token over TLS", func(t *testing.T) {
		res, err := detectScore(secureClient(t, tlsCreds, grpc.WithPerRPCCredentials(token)))
		wantScore(t, res, err)
	})
	t.Run("the token's caller may not call AntiHack", func(t *testing.T) {
		c := secureClient(t, tlsCreds, grpc.WithPerRPCCredentials(token))
		_, err := c.AntiHack(context.Background(), &livenessv1.AntiHackRequest{
			Source: &livenessv1.AntiHackRequest_LivenessData{LivenessData: []byte("SANDBOX:score=0.25")}})
		wantFailure(t, err, codes.PermissionDenied, livenessv1.ErrorReason_CALLER_NOT_ALLOWED)
	})
	t.Run("an unknown token", func(t *testing.T) {
		_, err := detectScore(secureClient(t, tlsCreds,
			grpc.WithPerRPCCredentials(livenessclient.BearerToken("not-a-caller"))))
		wantFailure(t, err, codes.Unauthenticated, livenessv1.ErrorReason_CALLER_UNKNOWN)
	})
	t.Run("no token", func(t *testing.T) {
		_, err := detectScore(secureClient(t, tlsCreds))
		wantFailure(t, err, codes.Unauthenticated, livenessv1.ErrorReason_CALLER_UNKNOWN)
	})
	t.Run("a spent daily quota, with QuotaFailure and RetryInfo", func(t *testing.T) {
		c := secureClient(t, tlsCreds,
			grpc.WithPerRPCCredentials(livenessclient.BearerToken(env(t, "LIVENESS_TEST_QUOTA_TOKEN"))))
		res, err := detectScore(c)
		wantScore(t, res, err)
		_, err = detectScore(c)
		lerr := wantFailure(t, err, codes.ResourceExhausted, livenessv1.ErrorReason_CALLER_QUOTA_EXCEEDED)
		if len(lerr.QuotaViolations) == 0 || lerr.QuotaViolations[0].Subject == "" || !lerr.HasRetryInfo ||
			lerr.RetryDelay <= 0 || lerr.RetryDelay > 24*time.Hour {
			t.Fatalf("details not decoded: %+v", lerr)
		}
	})
	t.Run("the token is never sent in plaintext", func(t *testing.T) {
		_, err := livenessclient.New(env(t, "LIVENESS_TARGET"),
			grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(token))
		if err == nil {
			t.Fatal("a bearer token over plaintext was accepted")
		}
	})
}

func TestSecureMTLS(t *testing.T) {
	t.Run("a registered client certificate", func(t *testing.T) {
		res, err := detectScore(secureClient(t,
			grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig(t, "checkout.internal")))))
		wantScore(t, res, err)
	})
	t.Run("an unregistered certificate with a bearer token", func(t *testing.T) {
		res, err := detectScore(secureClient(t,
			grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig(t, "stranger.internal"))),
			grpc.WithPerRPCCredentials(livenessclient.BearerToken(env(t, "LIVENESS_TEST_TOKEN")))))
		wantScore(t, res, err)
	})
	t.Run("an unregistered certificate alone", func(t *testing.T) {
		_, err := detectScore(secureClient(t,
			grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig(t, "stranger.internal")))))
		wantFailure(t, err, codes.Unauthenticated, livenessv1.ErrorReason_CALLER_UNKNOWN)
	})
	t.Run("no client certificate: the handshake fails", func(t *testing.T) {
		_, err := detectScore(secureClient(t,
			grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig(t, "")))))
		if lerr := livenessclient.FromError(err); lerr == nil || lerr.Code != codes.Unavailable {
			t.Fatalf("want UNAVAILABLE, got %v", err)
		}
	})
}
