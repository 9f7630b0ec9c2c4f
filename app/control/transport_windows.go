package control

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/Microsoft/go-winio"
	"github.com/authkeeper/authkeeper/keychain"
	"golang.org/x/sys/windows"
)

// Windows has no socket directory to keep others out: named pipes share one machine-wide namespace,
// and whoever creates a name first gets it. So the owner listens on a name no one can compute before
// it exists (engine.PipeName), the pipe's own DACL admits only the user (keychain.OwnerOnlySDDL),
// winio rejects remote clients (FILE_PIPE_REJECT_REMOTE_CLIENTS), and before it sends anything the
// client checks that the pipe it reached is owned by the user: another user who created the name
// (after the owner that recorded it died) would otherwise receive the client secrets and tokens that
// travel over it.

// ErrNotYours means something answers at the control address but is not provably the user's own: the
// pipe is owned by someone else, its owner cannot be read, or its DACL does not admit the user. It
// must not pass for an owner that is merely absent (see Remote).
var ErrNotYours = errors.New("the control pipe is not yours")

// listen opens the control API's named pipe at name, private to the user. Unlike a socket file, a pipe
// vanishes with the process that held it, so there is nothing stale to remove.
func listen(name string) (net.Listener, error) {
	user, err := keychain.UserSID()
	if err != nil {
		return nil, fmt.Errorf("control API: %w", err)
	}
	l, err := winio.ListenPipe(name, &winio.PipeConfig{SecurityDescriptor: keychain.OwnerOnlySDDL(user)})
	if err != nil {
		return nil, fmt.Errorf("control API: listen on %s: %w", name, err)
	}
	spendFirstInstance(name)
	return l, nil
}

// spendFirstInstance makes the pipe behave the same under Wine as on Windows. winio creates the pipe's
// first instance without read or write access, which Windows keeps disconnected: clients wait for the
// instances Accept creates. Wine 8 connects the first client to it instead, and as nothing ever serves
// that instance, that client's request hangs. Opening and closing it once here spends that
// connection. On Windows the open fails at once with ERROR_PIPE_BUSY and nothing happens. (A client
// that dials in the instant between ListenPipe and this call can still hit that instance under Wine.)
func spendFirstInstance(name string) {
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil, windows.OPEN_EXISTING, 0, 0)
	if err == nil {
		windows.CloseHandle(h)
	}
}

// dial connects to the control pipe at name, and hangs up unless the user owns it. A pipe whose DACL
// refuses the user is someone else's too (ours grants the user): that is ErrNotYours, not "not
// running", so that the caller does not go on as if no owner ran.
func dial(ctx context.Context, name string) (net.Conn, error) {
	c, err := winio.DialPipeContext(ctx, name)
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		return nil, fmt.Errorf("control pipe %s: %w: it does not let you in (%w)", name, ErrNotYours, err)
	}
	if err != nil {
		return nil, err
	}
	if err := checkOwner(c, name); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// checkOwner returns an ErrNotYours unless the pipe behind c is provably owned by the current user.
func checkOwner(c net.Conn, name string) error {
	f, ok := c.(interface{ Fd() uintptr })
	if !ok {
		return fmt.Errorf("control pipe %s: %w: cannot read its owner from a %T", name, ErrNotYours, c)
	}
	sd, err := windows.GetSecurityInfo(windows.Handle(f.Fd()), windows.SE_KERNEL_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("control pipe %s: %w: cannot read its owner: %w", name, ErrNotYours, err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return fmt.Errorf("control pipe %s: %w: cannot read its owner: %w", name, ErrNotYours, err)
	}
	if owner == nil {
		return fmt.Errorf("control pipe %s: %w: it has no owner", name, ErrNotYours)
	}
	user, err := keychain.UserSID()
	if err != nil {
		return fmt.Errorf("control pipe %s: %w: cannot tell who you are: %w", name, ErrNotYours, err)
	}
	if owner.String() != user {
		return fmt.Errorf("control pipe %s: %w: it is owned by %s, you are %s; refusing to send it anything", name, ErrNotYours, owner, user)
	}
	return nil
}
