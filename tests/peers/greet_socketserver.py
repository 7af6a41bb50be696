# The greeting protocol on Python's socketserver.ThreadingTCPServer, in the
# seed's style: the benchmark's Python contender.
# python3 greet_socketserver.py [HOST:PORT] (or a bare PORT)
import socketserver
import sys


class Greeter(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall('Welcome!'.encode('utf-8'))
        while True:
            data = self.request.recv(1024)
            if not data or data.decode('utf-8') == 'exit':
                break
            self.request.sendall(('你好,%s' % data.decode('utf-8')).encode('utf-8'))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default of 5 drops SYNs under 64 simultaneous connects, which
    # would measure TCP's retransmit timer, not Python.
    request_queue_size = 128


if __name__ == '__main__':
    from peer_args import server_address
    address, _ = server_address(sys.argv)
    with Server(address, Greeter) as s:
        print('LISTENING %d' % s.server_address[1], flush=True)
        s.serve_forever()
