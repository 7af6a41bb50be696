# The seed's UDP greeting server (udp编程, 服务端), unchanged but for the
# port: python3 greet_udp_server.py [PORT]
import sys
from socket import *
port = int(sys.argv[1]) if len(sys.argv) > 1 else 9999
s = socket(AF_INET, SOCK_DGRAM)
s.bind(('127.0.0.1', port))
print('在udp端口%d开启服务' % port)
print('LISTENING %d' % s.getsockname()[1], flush=True)
while True:
    data, addr = s.recvfrom(1024)
    print('从%s:%s接受新连接' % addr)
    s.sendto(('你好,%s' % data.decode('utf-8')).encode('utf-8'), addr)
