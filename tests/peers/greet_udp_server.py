# The seed's UDP greeting server (udp编程, 服务端), unchanged but for the
# address: python3 greet_udp_server.py [HOST:PORT] (or a bare PORT)
import sys
from socket import *
from peer_args import server_address
address, _ = server_address(sys.argv)
port = address[1]
s = socket(AF_INET, SOCK_DGRAM)
s.bind(address)
print('在udp端口%d开启服务' % port)
print('LISTENING %d' % s.getsockname()[1], flush=True)
while True:
    data, addr = s.recvfrom(1024)
    print('从%s:%s接受新连接' % addr)
    s.sendto(('你好,%s' % data.decode('utf-8')).encode('utf-8'), addr)
