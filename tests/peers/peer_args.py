# The peers' address, in the Rust examples' form: HOST:PORT in one
# argument. The seed-era forms work too: a client's HOST PORT as two
# arguments, a server's bare PORT. Imported by each peer (Python puts the
# script's own directory on the import path).
import sys

HOST = '127.0.0.1'
PORT = 9999


def _fail(why):
    print('%s: %s' % (sys.argv[0], why), file=sys.stderr)
    sys.exit(2)


def _port(text):
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        _fail('%r: the port must be a number from 0 to 65535' % text)
    return port


def _host_port(text):
    host, _, port = text.rpartition(':')
    return host.strip('[]') or HOST, _port(port)


def client_address(argv):
    """(host, port) from argv[1:]: HOST:PORT, or HOST [PORT]."""
    args = argv[1:]
    if not args:
        return HOST, PORT
    if ':' in args[0] and len(args) == 1:
        return _host_port(args[0])
    return args[0], _port(args[1]) if len(args) > 1 else PORT


def server_address(argv, loopback_only=False):
    """((host, port), the arguments after it) from argv[1:]: HOST:PORT,
    or PORT on 127.0.0.1."""
    args = argv[1:]
    if not args:
        address = (HOST, PORT)
    elif ':' in args[0]:
        address = _host_port(args[0])
    else:
        address = (HOST, _port(args[0]))
    if loopback_only and not (address[0].startswith('127.') or address[0] == 'localhost'):
        _fail('%s: this server runs commands for anyone who connects, so it '
              'listens on loopback only' % address[0])
    return address, args[1:]
