package enrich

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	namespacesapi "github.com/containerd/containerd/api/services/namespaces/v1"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The enricher talks to containerd's gRPC API services directly rather than
// through containerd's client library, which links content, snapshot,
// image and platform code the sensor never runs (and whose pages would stay
// resident in every sensor).

// nsHeader is the gRPC metadata key containerd reads the namespace of a call
// from.
const nsHeader = "containerd-namespace"

// maxMsgSize bounds one gRPC message either way, as containerd's own client
// does: a container record carries its whole OCI spec.
const maxMsgSize = 16 << 20

// conn is one connection to containerd and the services the enricher uses.
type conn struct {
	cc         *grpc.ClientConn
	containers containersapi.ContainersClient
	tasks      tasksapi.TasksClient
	events     eventsapi.EventsClient
	namespaces namespacesapi.NamespacesClient
	images     imagesapi.ImagesClient
}

// dial connects to containerd's socket, waiting at most timeout for the
// connection; an error that retrying cannot fix (no socket) returns at once.
func dial(ctx context.Context, socket string, timeout time.Duration) (*conn, error) {
	bo := backoff.DefaultConfig
	bo.MaxDelay = 3 * time.Second
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cc, err := grpc.DialContext(dctx, "passthrough:///containerd",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: timeout}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)),
		grpc.WithBlock(),
		grpc.FailOnNonTempDialError(true),
		grpc.WithReturnConnectionError(),
	)
	if err != nil {
		return nil, err
	}
	return &conn{
		cc:         cc,
		containers: containersapi.NewContainersClient(cc),
		tasks:      tasksapi.NewTasksClient(cc),
		events:     eventsapi.NewEventsClient(cc),
		namespaces: namespacesapi.NewNamespacesClient(cc),
		images:     imagesapi.NewImagesClient(cc),
	}, nil
}

func (c *conn) Close() error { return c.cc.Close() }

// withNamespace returns ctx with containerd's namespace header set to ns.
func withNamespace(ctx context.Context, ns string) context.Context {
	return metadata.NewOutgoingContext(ctx, metadata.Pairs(nsHeader, ns))
}

// isNotFound reports whether containerd answered that the object does not
// exist.
func isNotFound(err error) bool { return status.Code(err) == codes.NotFound }

// namespaceNames lists containerd's namespaces.
func (c *conn) namespaceNames(ctx context.Context) ([]string, error) {
	resp, err := c.namespaces.List(ctx, &namespacesapi.ListNamespacesRequest{})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(resp.Namespaces))
	for _, ns := range resp.Namespaces {
		if ns != nil {
			out = append(out, ns.Name)
		}
	}
	return out, nil
}

// listContainers lists the containers of ctx's namespace, streamed one by
// one (no message size limit on the whole listing), or in one answer from a
// containerd without the streaming call.
func (c *conn) listContainers(ctx context.Context) ([]*containersapi.Container, error) {
	stream, err := c.containers.ListStream(ctx, &containersapi.ListContainersRequest{})
	if err != nil {
		return c.listContainersOnce(ctx, err)
	}
	var out []*containersapi.Container
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			if len(out) == 0 {
				return c.listContainersOnce(ctx, err)
			}
			return nil, err
		}
		if m.Container != nil {
			out = append(out, m.Container)
		}
	}
}

func (c *conn) listContainersOnce(ctx context.Context, streamErr error) ([]*containersapi.Container, error) {
	if status.Code(streamErr) != codes.Unimplemented {
		return nil, streamErr
	}
	resp, err := c.containers.List(ctx, &containersapi.ListContainersRequest{})
	if err != nil {
		return nil, err
	}
	return resp.Containers, nil
}

// container gets one container of ctx's namespace.
func (c *conn) container(ctx context.Context, id string) (*containersapi.Container, error) {
	resp, err := c.containers.Get(ctx, &containersapi.GetContainerRequest{ID: id})
	if err != nil {
		return nil, err
	}
	if resp.Container == nil {
		return nil, fmt.Errorf("%w: no container in the answer for %q", errInvalid, trunc(id, 80))
	}
	return resp.Container, nil
}

// imageTarget returns the digest of the image name's target in ctx's
// namespace.
func (c *conn) imageTarget(ctx context.Context, name string) (string, error) {
	resp, err := c.images.Get(ctx, &imagesapi.GetImageRequest{Name: name})
	if err != nil {
		return "", err
	}
	if resp.Image == nil || resp.Image.Target == nil {
		return "", nil
	}
	return resp.Image.Target.Digest, nil
}

// subscribe follows containerd's events matching any of filters until ctx
// is done or the stream fails: events arrive on evs; the stream's end, with
// its error, on errs (closed after).
func (c *conn) subscribe(ctx context.Context, filters ...string) (evs <-chan *types.Envelope, errs <-chan error) {
	evq := make(chan *types.Envelope)
	errq := make(chan error, 1)
	stream, err := c.events.Subscribe(ctx, &eventsapi.SubscribeRequest{Filters: filters})
	if err != nil {
		errq <- err
		close(errq)
		return evq, errq
	}
	go func() {
		defer close(errq)
		for {
			env, err := stream.Recv()
			if err != nil {
				errq <- err
				return
			}
			select {
			case evq <- env:
			case <-ctx.Done():
				return
			}
		}
	}()
	return evq, errq
}
