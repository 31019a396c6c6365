# Nothing starts until every dependency answers like a client expects (log in, query, ping).
probe "mysql" {
  wait = true
  mysql {
    host = {
      hostname = "ENV:DB_HOST"
      port     = 3306
    }
    credentials = {
      user     = "ENV:DB_USER"
      password = "ENV:DB_PASSWORD"
    }
    database = "ENV:DB_NAME"
  }
}

probe "redis" {
  wait = true
  redis {
    url = "ENV:REDIS_URL"
  }
}

probe "amqp" {
  wait = true
  amqp {
    host = {
      hostname = "rabbitmq"
    }
    credentials = {
      user     = "ENV:AMQP_USER"
      password = "ENV:AMQP_PASSWORD"
    }
    virtualhost = "/"
  }
}

probe "mongodb" {
  wait = true
  mongodb {
    url = "ENV:MONGO_URL"
  }
}

probe "smtp" {
  wait = true
  smtp {
    host = {
      hostname = "ENV:SMTP_HOST"
    }
  }
}
