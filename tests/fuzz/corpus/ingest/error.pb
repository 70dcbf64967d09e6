:
磁盘已满 / disk full