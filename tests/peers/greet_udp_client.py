# The seed's UDP greeting client (udp编程, 客户端), unchanged but for the
# server's address: python3 greet_udp_client.py [HOST] [PORT]
import sys
from socket import *
host = sys.argv[1] if len(sys.argv) > 1 else '127.0.0.1'
port = int(sys.argv[2]) if len(sys.argv) > 2 else 9999
s = socket(AF_INET, SOCK_DGRAM)
for data in ['Michael', 'Tracy', 'Sarah']:
    s.sendto(data.encode('utf-8'), (host, port))
    print(s.recv(1024).decode('utf-8'))
s.close()
