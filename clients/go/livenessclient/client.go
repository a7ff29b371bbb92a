// Package livenessclient is a thin wrapper around the generated liveness.v1 client: it sets
// the message size limits a 5 MiB payload needs and turns every failure into an *Error that
// carries the gateway's google.rpc.ErrorInfo reason and metadata and its RetryInfo delay.
//
//	c, err := livenessclient.New("localhost:50051",
//		grpc.WithTransportCredentials(insecure.NewCredentials()))
//	reply, err := c.Detect(ctx, &livenessv1.DetectRequest{
//		Source: &livenessv1.DetectRequest_LivenessData{LivenessData: data}})
//	var lerr *livenessclient.Error
//	if errors.As(err, &lerr) && lerr.Reason == livenessclient.ReasonRateLimitExceeded {
//		time.Sleep(lerr.RetryDelay)
//	}
package livenessclient

import (
	"context"

	"google.golang.org/grpc"

	livenessv1 "github.com/liveness-gateway/liveness-gateway/clients/go/livenessv1"
)

// MaxMessageBytes is the largest gRPC message the client sends or receives: the gateway
// accepts 5 MiB of liveness data, and the transport must not refuse it first.
const MaxMessageBytes = 6 * 1024 * 1024

// DialOptions returns the options every connection to the gateway needs (message sizes).
// New adds them; use them directly when building a grpc.ClientConn yourself.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallSendMsgSize(MaxMessageBytes),
		grpc.MaxCallRecvMsgSize(MaxMessageBytes),
	)}
}

// Client calls liveness.v1.LivenessCheck. Every error it returns is an *Error.
type Client struct {
	conn *grpc.ClientConn
	stub livenessv1.LivenessCheckClient
}

// New connects to target ("host:port" or any gRPC target). opts must include transport
// credentials, e.g. grpc.WithTransportCredentials(insecure.NewCredentials()); they are
// applied after DialOptions, so they can override the message sizes.
func New(target string, opts ...grpc.DialOption) (*Client, error) {
	conn, err := grpc.NewClient(target, append(DialOptions(), opts...)...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, stub: livenessv1.NewLivenessCheckClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Stub returns the generated client on the same connection, for options this wrapper omits.
func (c *Client) Stub() livenessv1.LivenessCheckClient { return c.stub }

// Upload stores liveness data at the vendor and returns its id for Detect.
func (c *Client) Upload(ctx context.Context, req *livenessv1.UploadRequest, opts ...grpc.CallOption) (*livenessv1.UploadResponse, error) {
	resp, err := c.stub.Upload(ctx, req, opts...)
	return resp, wrap(err)
}

// Detect scores liveness data with LinkFace.
func (c *Client) Detect(ctx context.Context, req *livenessv1.DetectRequest, opts ...grpc.CallOption) (*livenessv1.DetectResponse, error) {
	resp, err := c.stub.Detect(ctx, req, opts...)
	return resp, wrap(err)
}

// AntiHack scores liveness data with AccuAuth.
func (c *Client) AntiHack(ctx context.Context, req *livenessv1.AntiHackRequest, opts ...grpc.CallOption) (*livenessv1.AntiHackResponse, error) {
	resp, err := c.stub.AntiHack(ctx, req, opts...)
	return resp, wrap(err)
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return FromError(err)
}
