# The greeting protocol on Python's socketserver.ThreadingTCPServer, in the
# seed's style: the benchmark's Python contender.
# python3 greet_socketserver.py [PORT]
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
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9999
    with Server(('127.0.0.1', port), Greeter) as s:
        print('LISTENING %d' % s.server_address[1], flush=True)
        s.serve_forever()
